"""viaseg.core: everything that is not a widget. Never imports Qt."""
