"""Request and response pieces shared by several routers."""
