"""Fault injection for the local engine (off unless given to it): see injector.py."""

from local.faults.injector import Candidate, FaultInjector, FaultKind, FaultRates, Injected, InjectedFault

__all__ = ["Candidate", "FaultInjector", "FaultKind", "FaultRates", "Injected", "InjectedFault"]
