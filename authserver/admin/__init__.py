"""Administration: the console at /admin, the JSON admin API, roles and permissions."""
