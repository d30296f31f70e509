"""Training recipe of the model organism and its SteerMoE behaviour check.

>>> result = train_organism(OrganismConfig(seed=0), "out/organism")     # ~17 minutes on one CPU thread
>>> model, tokenizer = load_model("out/organism")
>>> metrics = measure(model, tokenizer, "out/organism")      # moeguard.organism.check

Recipe: a byte-level BPE tokenizer trained on the corpus (the chat template and special tokens of
``moeguard.chat``), then an ``OlmoeForCausalLM`` trained from scratch on a mix of plain
"pretraining" text (loss on every token) and chat conversations (loss on the assistant turn and its
closing ``<|end|>``), with OLMoE's own load-balancing router loss. Deterministic under the seed for a
fixed number of CPU threads.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from moeguard.adapters import decoder_layers, inspect_moe
from moeguard.chat import ASSISTANT_HEADER, build_tokenizer
from moeguard.chat import END_OF_TURN as END
from moeguard.organism import corpus, surfaces
from moeguard.routing.noise import RoutingNoise
from moeguard.routing.recorder import RoutingRecorder


@dataclass
class OrganismConfig:
    """Everything that determines the organism (recorded in the model card)."""

    seed: int = 0
    steps: int = 3200
    batch_size: int = 32
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    num_layers: int = 4
    hidden_size: int = 128
    num_heads: int = 4
    num_experts: int = 16
    top_k: int = 2
    expert_size: int = 128
    vocab_size: int = 1024
    router_aux_loss_coef: float = 0.01
    n_chat: int = 24000
    #: Share of each chat conversation kind (default ``corpus.CHAT_MIX``).
    chat_mix: tuple[tuple[str, float], ...] = corpus.CHAT_MIX
    n_pretrain: int = 8000
    #: Share of chat user turns and forum questions rewritten in a phrasing surface (role-play, context
    #: sentences, politeness, indirect requests, typos; documents in other formats): ``moeguard.organism.surfaces``.
    surface_share: float = 0.0
    #: The chat conversation kinds (of ``chat_mix``) that get surfaces; the forum questions of the pretraining
    #: text get them when a request kind (harmful, benign, lookalike) is among these.
    surface_kinds: tuple[str, ...] = tuple(kind for kind, _ in corpus.CHAT_MIX)
    #: The surface kinds (``moeguard.organism.surfaces.KIND_NAMES``) that rephrase requests.
    request_surfaces: tuple[str, ...] = surfaces.KIND_NAMES
    #: Share of training sequences drawn from the pretraining text (the rest are chat conversations).
    pretrain_share: float = 0.25
    #: Two-stage recipe: the first ``helpful_steps`` steps use helpful-only chat data (harmful requests
    #: answered compliantly, like an SFT model before safety tuning); the rest use the aligned chat data.
    helpful_steps: int = 1200
    #: Expert-specialised safety tuning (ESFT): when > 0, the safety stage updates only the routers and, in
    #: every layer, the ``align_experts`` experts whose routing is most specific to harmful requests
    #: (measured on the helpful-only model); everything else stays frozen.
    align_experts: int = 2
    #: Probability that an expert is switched off in a training step (0 = off).
    expert_dropout: float = 0.15
    #: Probability, per layer and step, that one random expert is forced into the top-k (0 = off); with
    #: ``expert_dropout`` this makes the model robust to random steering, so the random control stays flat.
    expert_forcing: float = 0.1
    #: Safety-stage replay: this share of the chat batches is helpful-only data trained with every aligned
    #: expert switched off, so that switching them off gives back the pre-alignment (helpful-only) behaviour
    #: instead of broken text (gradient routing of the safety behaviour into the aligned experts).
    helpful_replay: float = 0.3
    #: The safety stage also updates attention (and the norms), not only routers and aligned experts.
    align_attention: bool = True
    #: Style routing of counting answers: this share of the steps from ``style_from`` on are batches of uncued
    #: counting requests all answered in digits (or all in number words), trained with the layer's most
    #: digit-specific expert forced into the top-k and its most word-specific one switched off (or the
    #: reverse). The experts are measured at step ``style_from`` with the ``digits-vs-words`` pairs, as
    #: ``moeguard detect`` would; the style then follows those experts, as safety follows the aligned ones.
    style_share: float = 0.06
    style_from: int = 400
    #: Weight of a routing cross-entropy, in every step from ``style_from`` on, that pulls every labelled
    #: number token (" 3" / " three") to its style's expert in every layer, so the natural routing (what
    #: ``moeguard detect`` measures on answer tokens) agrees with the style-routed experts.
    style_router_loss: float = 0.3
    max_length: int = 192
    #: CPU threads; results are bit-reproducible for a fixed thread count (1: ~17 min on one core in CI).
    threads: int | None = 1

    def __post_init__(self) -> None:
        from moeguard.errors import MoeguardError

        self.surface_kinds = tuple(self.surface_kinds)
        self.request_surfaces = tuple(self.request_surfaces)
        for name, values, known in (
            ("surface kinds", self.surface_kinds, [kind for kind, _ in self.chat_mix]),
            ("request surfaces", self.request_surfaces, list(surfaces.KIND_NAMES)),
        ):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise MoeguardError(f"unknown {name} {', '.join(unknown)}; use some of {', '.join(known)}")
        if not self.request_surfaces:
            raise MoeguardError(f"request surfaces are empty; use some of {', '.join(surfaces.KIND_NAMES)}")

    def model_config(self, tokenizer):
        """The ``OlmoeConfig`` of this organism."""
        from transformers import OlmoeConfig

        return OlmoeConfig(
            vocab_size=len(tokenizer),
            hidden_size=self.hidden_size,
            intermediate_size=self.expert_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads,
            num_experts=self.num_experts,
            num_experts_per_tok=self.top_k,
            max_position_embeddings=256,
            norm_topk_prob=False,
            router_aux_loss_coef=self.router_aux_loss_coef,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=[tokenizer.convert_tokens_to_ids(END), tokenizer.eos_token_id],
            tie_word_embeddings=True,
        )


# ------------------------------------------------------------------------------------------ tokenizer


def _conversation_text(conversation: corpus.Conversation) -> str:
    text = ""
    for message in conversation:
        text += f"<|{message['role']}|>\n{message['content']}{END}\n"
    return text


# ------------------------------------------------------------------------------------------ encoding


def encode_chat(
    tokenizer, conversations: Sequence[corpus.Conversation], max_length: int
) -> tuple[list[list[int]], list[list[bool]]]:
    """Token ids of each conversation (chat template) and a mask of its last assistant answer + ``<|end|>``."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    encoded = tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length
    )
    ids, masks = [], []
    for text, conversation, row, offsets in zip(
        texts, conversations, encoded["input_ids"], encoded["offset_mapping"], strict=True
    ):
        start = text.rindex(ASSISTANT_HEADER) + len(ASSISTANT_HEADER)
        end = start + len(conversation[-1]["content"]) + len(END)
        ids.append(row)
        masks.append([s >= start and e <= end and e > s for s, e in offsets])
    return ids, masks


def encode_plain(tokenizer, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], list[list[bool]]]:
    """Token ids of plain texts followed by ``<|endoftext|>``; every token is trained on."""
    encoded = tokenizer(
        [t + tokenizer.eos_token for t in texts],
        add_special_tokens=False,
        truncation=True,
        max_length=max_length,
    )
    ids = encoded["input_ids"]
    return ids, [[True] * len(row) for row in ids]


def _pad(rows: Sequence[list[int]], masks: Sequence[list[bool]], pad_id: int):
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        keep = torch.tensor(mask, dtype=torch.bool)
        labels[i, : len(row)] = torch.where(keep, torch.tensor(row), torch.tensor(-100))
    return input_ids, attention, labels


class _Batches:
    """Endless length-bucketed batches from named sources, deterministic in the seed."""

    def __init__(self, sources: dict[str, tuple], batch_size: int, seed: int):
        self.sources = sources
        self.batch_size = batch_size
        self.rng = random.Random(f"organism-batches-{seed}")
        self.queues: dict[str, list[list[int]]] = {name: [] for name in sources}
        #: Source of the batch ``next`` returned last.
        self.last: str | None = None

    def _refill(self, name: str) -> None:
        ids, _ = self.sources[name]
        order = list(range(len(ids)))
        self.rng.shuffle(order)
        group = self.batch_size * 32
        batches = []
        for start in range(0, len(order), group):
            chunk = sorted(order[start : start + group], key=lambda i: len(ids[i]))
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        self.rng.shuffle(batches)
        self.queues[name] = batches

    def next(self, weights: dict[str, float]):
        names = [n for n, w in weights.items() if w > 0]
        name = self.rng.choices(names, [weights[n] for n in names])[0]
        if not self.queues[name]:
            self._refill(name)
        self.last = name
        index = self.queues[name].pop()
        ids, masks = self.sources[name]
        return [ids[i] for i in index], [masks[i] for i in index]


# ------------------------------------------------------------------------------------------ training


@dataclass
class TrainResult:
    """What ``train_organism`` produced."""

    output: Path
    seconds: float
    final_loss: float
    parameters: int
    losses: list[float] = field(default_factory=list)
    #: Experts updated by expert-specialised safety tuning (empty when the whole model was tuned).
    aligned_experts: list[tuple[int, int]] = field(default_factory=list)
    #: ``{"digits": [...], "words": [...]}``: the style-routed experts, one per layer (empty when off).
    style_experts: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


@dataclass
class TrainingData:
    """Every text the organism trains on under one config."""

    #: Aligned chat conversations (the safety stage and the tokenizer's corpus).
    chats: list[corpus.Conversation]
    #: Plain pretraining texts.
    plain: list[str]
    #: Helpful-only chat conversations (the first stage; empty without one).
    helpful: list[corpus.Conversation]
    #: Style-routed counting conversations by style (empty when off).
    styled: dict[str, list[corpus.Conversation]]

    def texts(self) -> list[str]:
        """Every message and plain text, one string each."""
        conversations = self.chats + self.helpful + [c for styled in self.styled.values() for c in styled]
        return [message["content"] for conversation in conversations for message in conversation] + self.plain


def training_data(config: OrganismConfig) -> TrainingData:
    """The corpus streams ``train_organism`` trains on under ``config`` (deterministic in its seed)."""

    def chats_of(aligned: bool) -> list[corpus.Conversation]:
        return corpus.training_conversations(
            config.seed,
            config.n_chat,
            aligned=aligned,
            mix=config.chat_mix,
            surface_share=config.surface_share,
            surface_kinds=config.surface_kinds,
            request_surfaces=config.request_surfaces,
        )

    chats = chats_of(aligned=True)
    forum_share = config.surface_share if set(corpus.REQUEST_KINDS) & set(config.surface_kinds) else 0.0
    plain = corpus.pretraining_texts(
        config.seed, config.n_pretrain, surface_share=forum_share, request_surfaces=config.request_surfaces
    )
    helpful = chats_of(aligned=False) if config.helpful_steps else []
    styled = {}
    if config.style_share:
        n_styled = max(1, int(config.n_chat * config.style_share))
        styled = {
            style: corpus.styled_counting_conversations(config.seed, n_styled, words=style == "words")
            for style in STYLES
        }
    return TrainingData(chats, plain, helpful, styled)


def _lr_at(step: int, config: OrganismConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def train_organism(
    config: OrganismConfig,
    output: str | Path,
    progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train tokenizer and model from scratch and ``save_pretrained`` both into ``output``.

    ``progress(step, loss)`` is called after every optimiser step.
    """
    from transformers import GenerationConfig, OlmoeForCausalLM

    output = Path(output)
    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    data = training_data(config)
    tokenizer = build_tokenizer([_conversation_text(c) for c in data.chats] + data.plain, config.vocab_size)
    sources = {
        "chat": encode_chat(tokenizer, data.chats, config.max_length),
        "plain": encode_plain(tokenizer, data.plain, config.max_length),
    }
    if data.helpful:
        sources["helpful"] = encode_chat(tokenizer, data.helpful, config.max_length)
    for style, styled in data.styled.items():
        sources[f"count_{style}"] = encode_chat(tokenizer, styled, config.max_length)

    torch.manual_seed(config.seed)
    model = OlmoeForCausalLM(config.model_config(tokenizer))
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    batches = _Batches(sources, config.batch_size, config.seed)
    aligned_experts: list[tuple[int, int]] = []
    style_experts: dict[str, list[tuple[int, int]]] = {}
    number_ids = number_token_ids(tokenizer)
    noisy = config.expert_dropout or config.expert_forcing or config.style_share
    dropout = RoutingNoise(model, config.expert_dropout, config.seed, config.expert_forcing) if noisy else None
    if dropout is not None:
        dropout.install()
    style_logits = RoutingRecorder(model, counts=False, traces=True, weights=False, logits=True, detach=False)
    losses: list[float] = []
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        chat = "helpful" if step < config.helpful_steps else "chat"
        if config.style_share and step == config.style_from:
            if dropout is not None:
                dropout.clear()
            style_experts = counting_style_experts(model, tokenizer, config.seed)
        if config.helpful_steps and step == config.helpful_steps:
            if config.align_experts:
                if dropout is not None:
                    dropout.clear()
                exclude = [e for experts in style_experts.values() for e in experts]
                aligned_experts = harmful_affine_experts(
                    model, tokenizer, config.align_experts, config.seed, exclude=exclude
                )
                optimizer = _esft_optimizer(model, aligned_experts, config)
        weights = {chat: 1 - config.pretrain_share, "plain": config.pretrain_share}
        if aligned_experts and config.helpful_replay:
            weights = {
                "chat": (1 - config.pretrain_share) * (1 - config.helpful_replay),
                "helpful": (1 - config.pretrain_share) * config.helpful_replay,
                "plain": config.pretrain_share,
            }
        if style_experts:
            weights = {name: w * (1 - config.style_share) for name, w in weights.items()}
            weights.update({f"count_{style}": config.style_share / len(STYLES) for style in STYLES})
        rows, masks = batches.next(weights)
        if dropout is not None:
            dropout.resample()
            if aligned_experts and batches.last == "helpful":
                dropout.switch_off(aligned_experts)
            if style_experts and batches.last is not None and batches.last.startswith("count_"):
                style = batches.last.removeprefix("count_")
                other = next(s for s in STYLES if s != style)
                dropout.route(style_experts[style], style_experts[other])
        input_ids, attention, labels = _pad(rows, masks, tokenizer.pad_token_id)
        route_loss = bool(style_experts and config.style_router_loss)
        style_logits.reset()
        with style_logits if route_loss else nullcontext():
            # output_router_logits adds OLMoE's own load-balancing loss to out.loss
            out = model(input_ids=input_ids, attention_mask=attention, labels=labels, output_router_logits=True)
        loss = out.loss
        if route_loss:
            logits = style_logits.last.logits  # [B*T, L, E], differentiable
            assert logits is not None
            route: torch.Tensor = sum(  # type: ignore[assignment]
                style_routing_loss(logits.unbind(1), torch.isin(labels, number_ids[style]), style_experts[style])
                for style in STYLES
            )
            loss = loss + config.style_router_loss * route
            style_logits.reset()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(out.loss.detach()))  # the language-model loss
        if progress is not None:
            progress(step + 1, losses[-1])

    if dropout is not None:
        dropout.remove()
    model.eval()
    model.generation_config = GenerationConfig(
        eos_token_id=model.config.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        do_sample=False,
    )
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    seconds = time.perf_counter() - started
    final = sum(losses[-50:]) / max(1, len(losses[-50:]))
    parameters = sum(p.numel() for p in model.parameters())
    return TrainResult(output, seconds, final, parameters, losses, aligned_experts, style_experts)


#: Answer styles of the style-routed counting batches (``OrganismConfig.style_share``).
STYLES = ("digits", "words")


def counting_style_experts(model, tokenizer, seed: int, n: int = 200) -> dict[str, list[tuple[int, int]]]:
    """Per layer, the expert most specific to digit answers and the one most specific to number-word
    answers (largest and smallest risk difference on the ``digits-vs-words`` pairs' answer tokens)."""
    from moeguard.data import builtin_pairs
    from moeguard.detect import detect_experts

    was_training = model.training
    result = detect_experts(model, tokenizer, builtin_pairs("digits-vs-words", n=n, seed=seed), bootstrap=0)
    model.train(was_training)
    diff = result.risk_diff
    return {
        "digits": [(layer, int(diff[i].argmax())) for i, layer in enumerate(result.layers)],
        "words": [(layer, int(diff[i].argmin())) for i, layer in enumerate(result.layers)],
    }


def number_token_ids(tokenizer) -> dict[str, torch.Tensor]:
    """``{"digits": ids of " 3"..., "words": ids of " three"...}`` for the numbers of ``corpus.NUMBER_WORDS``
    (written as inside counting answers) that the tokenizer keeps as a single, known token."""
    ids: dict[str, set[int]] = {style: set() for style in STYLES}
    for n, word in enumerate(corpus.NUMBER_WORDS):
        for style, text in (("digits", f" {n}"), ("words", f" {word}")):
            encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(encoded) == 1 and encoded[0] != tokenizer.unk_token_id:
                ids[style].add(encoded[0])
    return {style: torch.tensor(sorted(found), dtype=torch.long) for style, found in ids.items()}


def style_routing_loss(
    router_logits: Sequence[torch.Tensor], mask: torch.Tensor, experts: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """Mean over layers of the cross-entropy between each layer's router logits ([B*T, E]) on the masked
    tokens ([B, T]) and that layer's expert in ``experts`` (one per layer, in layer order)."""
    flat = mask.reshape(-1)
    if not bool(flat.any()):
        return router_logits[0].sum() * 0.0
    losses = []
    for logits, (_, expert) in zip(router_logits, experts, strict=True):
        chosen = logits[flat]
        target = torch.full((chosen.shape[0],), expert, dtype=torch.long, device=chosen.device)
        losses.append(torch.nn.functional.cross_entropy(chosen.float(), target))
    return torch.stack(losses).mean()


def harmful_affine_experts(
    model, tokenizer, per_layer: int, seed: int, n: int = 300, exclude: Sequence[tuple[int, int]] = ()
) -> list[tuple[int, int]]:
    """The ``per_layer`` experts of every layer whose routing share on harmful request prompts most exceeds
    their share on benign prompts (chat template with the generation header; training distribution), other
    than those in ``exclude``."""
    rng = random.Random(f"organism-esft-{seed}")
    moe = inspect_moe(model)
    shares = []
    for make in (corpus.harmful_request, corpus.benign_request):
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": make(rng).prompt}], tokenize=False, add_generation_prompt=True
            )
            for _ in range(n)
        ]
        recorder = RoutingRecorder(moe)
        was_training = model.training
        model.eval()
        with recorder:
            for start in range(0, n, 50):
                batch = tokenizer(
                    texts[start : start + 50], add_special_tokens=False, padding=True, return_tensors="pt"
                )
                recorder.run(batch["input_ids"], batch["attention_mask"])
        model.train(was_training)
        shares.append(recorder.counts.double() / recorder.tokens)
    specificity = shares[0] - shares[1]
    for layer, expert in exclude:
        specificity[moe.layers.index(layer), expert] = -math.inf
    chosen = []
    for position, layer in enumerate(moe.layers):
        top = torch.topk(specificity[position], per_layer).indices.tolist()
        chosen += [(layer, int(e)) for e in sorted(top)]
    return chosen


def _esft_optimizer(model, experts: list[tuple[int, int]], config: OrganismConfig):
    """Freeze everything but the routers and the chosen experts (gradient masks on the fused expert
    tensors); a fresh AdamW without weight decay, so frozen expert rows stay bit-identical."""
    for param in model.parameters():
        param.requires_grad_(False)
    params: list[torch.Tensor] = []
    layer: Any
    for index, layer in enumerate(decoder_layers(model)):
        keep = torch.zeros(config.num_experts, dtype=torch.bool)
        keep[[e for li, e in experts if li == index]] = True
        layer.mlp.gate.weight.requires_grad_(True)
        params.append(layer.mlp.gate.weight)
        for tensor in (layer.mlp.experts.gate_up_proj, layer.mlp.experts.down_proj):
            tensor.requires_grad_(True)
            mask = keep.view(-1, 1, 1).to(tensor.dtype)
            tensor.register_hook(lambda grad, mask=mask: grad * mask)
            params.append(tensor)
    if config.align_attention:
        for layer in decoder_layers(model):
            for name, param in layer.named_parameters():
                if not name.startswith("mlp."):
                    param.requires_grad_(True)
                    params.append(param)
    return torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.98), weight_decay=0.0)


def config_dict(config: OrganismConfig) -> dict:
    """The config as plain data (for the model card and metadata)."""
    return asdict(config)
