"""The research console: researchers' login and access to their own studies, creating a study from an
uploaded bundle, its texts and status, the preview, the live dashboard and the analysis report."""
