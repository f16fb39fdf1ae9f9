"""In-memory fakes of the ports, one module per port, honest enough to pass the
contract suites (tests/contract). Import each from its module."""

__all__: list[str] = []
