"""Stage handlers of the quick-start cascade."""
