"""The one home of test support code: builders, fakes, clients and processes the tests share.

No tests here. Test modules import from `tests.support.*` and never from one another
(tests/unit/test_layers.py checks it). `kafka` and `pipeline` talk to a broker or start
processes; the others are plain values and functions, and `cmars` starts the CMaRS
emulator only when a test enters `running_emulator`.
"""
