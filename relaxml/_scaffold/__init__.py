"""`relaxml init`: a new backend project from a template."""
