"""Plugin families shipped with kestractl, each built only on `kestractl.plugin` as a third party would be."""
