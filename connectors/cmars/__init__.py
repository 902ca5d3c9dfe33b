"""Delivery to CMaRS: the contract (openapi.yaml), the sink connector and the emulator."""
