from hpogrow.cli import main

raise SystemExit(main())
