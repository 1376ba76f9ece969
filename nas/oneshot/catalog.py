"""The built-in one-shot methods, declared without importing them (torch-free).

Each method is one module that registers its class in
:data:`nas.core.oneshot.ONESHOT`; this catalog only names it, so a config
check such as ``'darts' in ONESHOT`` never imports torch. A plugin method is
added the same way: one module with ``@ONESHOT.register("name")`` (imported
through the config's ``plugins``), or a lazy ``ONESHOT.register_lazy``.
"""

from __future__ import annotations

from nas.core.oneshot import ONESHOT, SINGLE_WORKER, SingleWorker

#: Method name -> ``"module:class"`` of its implementation.
BUILTINS: dict[str, str] = {
    "darts": "nas.oneshot.darts:DartsMethod",
    "pc_darts": "nas.oneshot.darts:PcDartsMethod",
    "gdas": "nas.oneshot.gdas:GdasMethod",
    "spos": "nas.oneshot.spos:SposMethod",
    "drnas": "nas.oneshot.drnas:DrnasMethod",
    "beta_darts": "nas.oneshot.beta_darts:BetaDartsMethod",
    "sharpdarts": "nas.oneshot.sharpdarts:SharpDartsMethod",
    "dropnas": "nas.oneshot.dropnas:DropnasMethod",
    "robust_darts": "nas.oneshot.robust_darts:RobustDartsMethod",
    "rarts": "nas.oneshot.rarts:RartsMethod",
    "amended_darts": "nas.oneshot.amended_darts:AmendedDartsMethod",
    "d_darts": "nas.oneshot.d_darts:DDartsMethod",
    "bignas": "nas.oneshot.bignas:BignasMethod",
    "attentivenas": "nas.oneshot.attentivenas:AttentiveNasMethod",
    "gold_nas": "nas.oneshot.gold_nas:GoldNasMethod",
    "sd_darts": "nas.oneshot.sd_darts:SdDartsMethod",
    "smash": "nas.oneshot.smash:SmashMethod",
    "dnas": "nas.oneshot.dnas:DnasMethod",
    "rc_darts": "nas.oneshot.rc_darts:RcDartsMethod",
}

#: The built-ins whose step is not linear in the batch, so data-parallel ranks cannot average it
#: (:mod:`nas.oneshot.parallel`): refused with ``resources.workers`` > 1.
SINGLE_WORKER.update(
    {
        "darts": SingleWorker(
            "with order: 2 takes a virtual weight step on the whole batch's gradient inside every "
            "architecture step (order: 1 trains data-parallel)",
            option="order",
            value=2,
        ),
        "amended_darts": SingleWorker(
            "computes its amended second-order term from Hessian products of the whole batch"
        ),
        "attentivenas": SingleWorker(
            "picks each step's sub-networks by their loss on the whole batch, which no rank sees"
        ),
    }
)

for _name, _reference in BUILTINS.items():
    ONESHOT.register_lazy(_name, _reference)

__all__ = ["BUILTINS"]
