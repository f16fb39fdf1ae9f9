"""Helpers the tests share: real peers (PostgreSQL, SeaweedFS, nginx) and Debian tools.

The JustStorage server itself is started by `juststorage.testing`, shared with
bench/ and scripts/. pytest finds this package as `support` (tests/ is on its
path); `python -m bench`, run from the repository root, imports it as `tests.support`.
"""
