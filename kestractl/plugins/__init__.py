"""Plugin families built on `kestractl.plugin` as a third party would build them; each is loaded through the
`kestractl.plugins` entry-point group the first time a flow uses one of its types."""
