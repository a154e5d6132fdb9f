"""What drives the core from outside: register map, memory images, host and C drivers."""
