"""The identity of a prepared dataset's format, shared by its writer (``framework.prepare``) and
its reader (:mod:`framework.data.prepared`) without importing either."""

FORMAT = "lm-framework prepared dataset 1"
SPLITS = ("train", "val")
