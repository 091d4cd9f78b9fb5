"""Plugin families built on the public plugin API (`kestractl.plugin`) as a third party would build them; each is
found through the `kestractl.plugins` entry-point group and imported on first use of one of its types."""
