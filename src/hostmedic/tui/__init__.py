"""Full-screen live views (textual)."""
