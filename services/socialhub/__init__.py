"""SocialHub services: a shared kit, the gateway template and one package per service."""
