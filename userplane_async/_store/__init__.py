"""Object storage as a destination (the ``objectstore`` extra): ``s3://``, ``gs://``, ``az://``
and ``file://`` URLs, or a configured obstore store, through obstore.

Imported only when such a destination is asked for: the core never needs obstore.
"""

from ._cleanup import cleanup_uploads
from ._destination import StoreDestination, store_destination, store_place

__all__ = ["StoreDestination", "cleanup_uploads", "store_destination", "store_place"]
