"""Run the cosma_fast benchmark suite (same options as ``cosma-fast bench``).

    python bench/run.py --models example --budgets M_R,M_H,M_P --time-limit 60 --out bench/results
"""

import sys

from cosma_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
