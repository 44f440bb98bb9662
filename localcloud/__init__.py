"""The local AWS: runs the synthesized stacks on an embedded emulator (moto), filling only its gaps."""
