"""Email: templates rendered once per digest, messages assembled per recipient."""
