"""Data operations on studies: importing a stimulus bundle, exporting answers, backup and restore."""
