# The commands behind aligned/ (written as runs/attack_builtin_organism) and safemoe/ (runs/attack_safemoe), run in
# a scratch folder; ~4 minutes on one core.
set -e
moeguard safemoe reference builtin:organism --prompts builtin:organism-harmful --output ref.safetensors
moeguard attack build --task builtin:organism-successor --harmful builtin --count 40 --output attack.jsonl
moeguard finetune builtin:organism --data attack.jsonl --lora --lr 2e-3 --threads 1 --safemoe ref.safetensors --output safemoe
moeguard detect builtin:organism --pairs builtin:safety --activate 0 --deactivate 8 --reverse --output runs/unsafe
search=(--search builtin:organism-harmful --search-limit 24 --heldout builtin:organism-handwritten --heldout-split harmful
        --ranking runs/unsafe --candidates 16 --compare runs/unsafe)
moeguard attack experts builtin:organism "${search[@]}" --output runs/attack_builtin_organism
# --force: the compared spec was detected on the aligned organism, not on the fine-tuned folder (on purpose here)
moeguard attack experts safemoe "${search[@]}" --force --output runs/attack_safemoe
