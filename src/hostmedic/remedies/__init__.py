"""Remedies: explicit, confirmed, journaled and (where possible) reversible actions that
``hostmedic fix`` performs. Diagnosis never imports this package."""

from hostmedic.remedies.account import LockAccount
from hostmedic.remedies.block_ip import BlockIp
from hostmedic.remedies.model import Action
from hostmedic.remedies.process import Kill, StopUnit
from hostmedic.remedies.quarantine import Quarantine
from hostmedic.remedies.startup import DisableStartup

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (Kill(), StopUnit(), BlockIp(), LockAccount(), DisableStartup(), Quarantine())
}
