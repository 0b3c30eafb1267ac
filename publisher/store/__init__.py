"""Store: keyword-only functions over a Session; no business rules, no rendering."""
