"""Routes, one module per protocol. All of them call the DataPlane found in request.state."""
