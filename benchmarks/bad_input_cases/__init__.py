"""The cases of the bad-input campaign (benchmarks/bad_inputs.py), one module per class, and the
harness they run on; ``all_cases()`` registers every class once, in the report's order."""
from .checkpoints import add_checkpoint_cases
from .data_files import add_data_cases
from .flags import add_flag_cases
from .harness import CASES
from .interrupts import add_interrupt_cases
from .output_os import add_output_cases
from .run_folders import add_run_folder_cases

CLASSES = (add_data_cases, add_flag_cases, add_run_folder_cases, add_checkpoint_cases,
           add_output_cases, add_interrupt_cases)


def all_cases():
    if not CASES:
        for add in CLASSES:
            add()
    return CASES
