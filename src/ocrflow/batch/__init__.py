"""`ocrflow batch`: every page of an archive OCR'd on Ray, resumable, each page written once.

    from ocrflow.batch import run
    summary = run("./scans/", "./out/", workers=2)          # a local Ray; address="auto" for a cluster

Ray is an extra: pip install 'ocrflow[cluster]'. See docs/batch.md.
"""

from .runner import run

__all__ = ["run"]
