"""The edges: LMS in (gateway, CSV import), CMaRS out (sink), and the CMaRS emulator."""
