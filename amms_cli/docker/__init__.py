"""Images and containers for amms: `render` (pure text from templates), `context` (the build context on
disk) and `engine` (docker SDK side effects). This package never imports `amms_cli.http`."""
