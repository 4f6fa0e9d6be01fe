"""`make run`: the main job on the embedded default (configs/main_job.yaml); see pipeline/main_job.py.

    python scripts/run_default.py [fresh=true] [quick=true] [overrides=[trainer=cpu]]
"""

from kazakh_ner_stance.cli import main_job_main

if __name__ == "__main__":
    main_job_main()
