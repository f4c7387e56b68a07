"""A DDPG agent as HAQ (Wang et al., CVPR 2019) uses it: actor/critic MLPs, target networks,
replay buffer, truncated-normal exploration that decays per episode, moving-average reward
baseline. torch only.

Defaults follow HAQ's published agent (``rl_quantize.py`` / ``lib/rl/ddpg.py`` of
mit-han-lab/haq): hidden layers 300/300, actor lr 1e-4, critic lr 1e-3, soft target update
tau 0.01, batch 64, replay memory of 128 transitions per step of an episode, discount 1 (the
episode's one reward is given to each of its steps), exploration sigma 0.5 decaying by 0.99
per episode after warm-up, actions in [0, 1], one update per observed transition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import truncnorm
from torch import nn


@dataclass(frozen=True)
class DDPGConfig:
    """Agent hyper-parameters (HAQ's defaults)."""

    hidden: tuple[int, int] = (300, 300)
    lr_actor: float = 1e-4
    lr_critic: float = 1e-3
    tau: float = 0.01
    batch_size: int = 64
    replay_size: int = 128 * 100  # transitions; run_haq uses 128 per step of its episodes, as HAQ does
    discount: float = 1.0
    init_delta: float = 0.5
    delta_decay: float = 0.99
    moving_alpha: float = 0.5


class Actor(nn.Module):
    """state -> action in [0, 1]."""

    def __init__(self, n_states: int, hidden: tuple[int, int]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_states, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                 nn.Linear(hidden[1], 1), nn.Sigmoid())

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s)


class Critic(nn.Module):
    """(state, action) -> Q; the action joins at the first hidden layer as in HAQ."""

    def __init__(self, n_states: int, hidden: tuple[int, int]) -> None:
        super().__init__()
        self.fs = nn.Linear(n_states, hidden[0])
        self.fa = nn.Linear(1, hidden[0])
        self.rest = nn.Sequential(nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Linear(hidden[1], 1))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.rest(self.fs(s) + self.fa(a))


class ReplayBuffer:
    """A ring buffer of (state, action, reward, next state, done) transitions."""

    def __init__(self, size: int, n_states: int) -> None:
        self.size = size
        self.s = np.zeros((size, n_states), np.float32)
        self.a = np.zeros((size, 1), np.float32)
        self.r = np.zeros((size, 1), np.float32)
        self.s1 = np.zeros((size, n_states), np.float32)
        self.done = np.zeros((size, 1), np.float32)
        self.n = 0

    def __len__(self) -> int:
        return min(self.n, self.size)

    def add(self, s: np.ndarray, a: float, r: float, s1: np.ndarray, done: bool) -> None:
        i = self.n % self.size
        self.s[i], self.a[i, 0], self.r[i, 0], self.s1[i], self.done[i, 0] = s, a, r, s1, float(done)
        self.n += 1

    def sample(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        idx = rng.integers(0, len(self), size=k)
        return self.s[idx], self.a[idx], self.r[idx], self.s1[idx], self.done[idx]


def _soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


class DDPGAgent:
    """The agent: :meth:`act` (with exploration), :meth:`observe` and :meth:`update`."""

    def __init__(self, n_states: int, seed: int, config: DDPGConfig = DDPGConfig()) -> None:
        self.config = config
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor, self.actor_target = Actor(n_states, config.hidden), Actor(n_states, config.hidden)
            self.critic, self.critic_target = Critic(n_states, config.hidden), Critic(n_states, config.hidden)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr_actor)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr_critic)
        self.memory = ReplayBuffer(config.replay_size, n_states)
        self.moving_average: float | None = None
        self.updates = 0

    def delta(self, episode: int, warmup: int) -> float:
        """Exploration sigma of ``episode`` (0-based): init_delta * delta_decay^(episodes after warm-up)."""
        return self.config.init_delta * self.config.delta_decay ** max(episode - warmup, 0)

    def act(self, state: np.ndarray, episode: int, warmup: int) -> float:
        """Uniform random during warm-up, then the actor's action with truncated-normal noise in [0, 1]."""
        if episode < warmup:
            return float(self.rng.uniform(0.0, 1.0))
        with torch.no_grad():
            mu = float(self.actor(torch.as_tensor(state, dtype=torch.float32)[None])[0, 0])
        sigma = self.delta(episode, warmup)
        if sigma <= 0:
            return mu
        lo, hi = (0.0 - mu) / sigma, (1.0 - mu) / sigma
        return float(np.clip(truncnorm.rvs(lo, hi, loc=mu, scale=sigma, random_state=self.rng), 0.0, 1.0))

    def observe(self, s: np.ndarray, a: float, r: float, s1: np.ndarray, done: bool) -> None:
        self.memory.add(s, a, r, s1, done)

    def update(self) -> None:
        """One critic + actor step on a replay batch, then soft target updates."""
        cfg = self.config
        if len(self.memory) < cfg.batch_size:
            return
        s, a, r, s1, done = (torch.as_tensor(x) for x in self.memory.sample(cfg.batch_size, self.rng))
        mean_r = float(r.mean())
        self.moving_average = mean_r if self.moving_average is None else \
            self.moving_average + cfg.moving_alpha * (mean_r - self.moving_average)
        r = r - self.moving_average
        with torch.no_grad():
            q_next = self.critic_target(s1, self.actor_target(s1))
            target = r + cfg.discount * (1.0 - done) * q_next
        critic_loss = nn.functional.mse_loss(self.critic(s, a), target)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        actor_loss = -self.critic(s, self.actor(s)).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        _soft_update(self.actor_target, self.actor, cfg.tau)
        _soft_update(self.critic_target, self.critic, cfg.tau)
        self.updates += 1
