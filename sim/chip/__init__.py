"""The golden model of the learning core: `docs/hardware_contract.md` in numpy integers."""
