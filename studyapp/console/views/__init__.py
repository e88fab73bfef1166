"""Views of the research console: the dashboard, the pages that change a study, the preview."""
