"""kestractl's plugin families, each built on `kestractl.plugin` alone, as a third party would build it."""
