"""Posts service (port 5001): posts and media, visibility, comments, reactions, feeds, AI."""
