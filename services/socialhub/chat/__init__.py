"""The chat service: Socket.IO rooms across instances through Redis, with durable history."""
