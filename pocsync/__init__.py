"""pocsync: federated directory sync for cyber/ICT-security Points of Contact."""

__version__ = "0.1.0"
