"""Auth service (port 5000): accounts, JWTs, the gateway's token check and password reset."""
