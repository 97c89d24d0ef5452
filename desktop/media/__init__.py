"""Media files in and out: images (``formats``, ``image_read``, ``image_metadata``, ``tiff_tags``,
``image_write``) and videos (``video_source``, ``video_writer``). No colorizing happens here."""
