"""Admin: accounts and site settings. Readers get 403."""
