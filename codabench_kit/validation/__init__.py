"""Check a submission zip the way Codabench will run it: safely unpacked, run in a child process."""

from codabench_kit.validation.check import Check
from codabench_kit.validation.runner import ValidationReport, validate_zip
from codabench_kit.validation.safe_zip import ZipSummary, inspect_zip, safe_extract

__all__ = ["Check", "ValidationReport", "ZipSummary", "inspect_zip", "safe_extract", "validate_zip"]
