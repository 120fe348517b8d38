"""One namespace class per API area; :class:`~userplane_async.AsyncUserplane` holds them."""
