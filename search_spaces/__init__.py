"""Search-space files shipped with hpogrow (installed as ``hpogrow.search_spaces``)."""
