#!/usr/bin/env bash
# Every command whose numbers the README shows, in order (about 20 minutes on 2 CPU cores: run as two
# parallel halves, main job + benchmarks and evaluation + analyses, they took 10 minutes each; each resumes or
# overwrites its own folder under outputs/). Run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
$py train.py --config configs/toysounds.yaml                      # the main job
$py benchmarks/toyworld_truth.py                                   # ToySounds models + explanations vs ground truth
$py benchmarks/toyworld_pairs.py                                   # two-event check on 600 prompts + the codec ceiling
$py benchmarks/explain_speed.py --model toysounds --threads 1      # time and memory per explanation
$py train.py --config configs/evaluate_toysounds.yaml              # Table 1 and Table 2
for study in token_ranking negation sanity editing difference; do
  $py -m analysis.$study --config configs/analysis_$study.yaml
done
$py -m analysis.report --config configs/report_toysounds.yaml      # outputs/report/toysounds/report.html
