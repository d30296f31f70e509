set -e
M="moeguard"
$M safemoe reference builtin:organism --prompts builtin:organism-harmful --output ref.safetensors
$M attack build --task builtin:organism-successor --harmful builtin --count 40 --output attack.jsonl
$M finetune builtin:organism --data attack.jsonl --lora --lr 2e-3 --threads 1 --safemoe ref.safetensors --output safemoe
$M organism eval safemoe --task successor > eval_safemoe.txt
$M detect builtin:organism --pairs builtin:safety --activate 0 --deactivate 8 --reverse --output runs/unsafe
$M detect safemoe --pairs builtin:safety --activate 0 --deactivate 8 --reverse --output runs/unsafe_safemoe
for name in builtin:organism safemoe; do
  tag=$(echo $name | tr ':' '_')
  $M attack experts $name --search builtin:organism-harmful --search-limit 24 --heldout builtin:organism-handwritten --heldout-split harmful --ranking runs/unsafe --candidates 16 --compare runs/unsafe --output runs/attack_$tag
done
$M attack experts safemoe --search builtin:organism-harmful --search-limit 24 --heldout builtin:organism-handwritten --heldout-split harmful --ranking runs/unsafe_safemoe --candidates 16 --compare runs/unsafe_safemoe --output runs/attack_safemoe_own
echo done
# (the second attack was rerun with --force: its --compare spec was detected on builtin:organism, not on safemoe)
