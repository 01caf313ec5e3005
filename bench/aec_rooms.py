"""Image-method room impulse responses (pyroomacoustics), normalised like the generated ones."""

import numpy as np
import pyroomacoustics as pra


def image_room(rate, rt60, distance, seed=0, size=(6.0, 4.5, 3.0)):
    """Impulse response from a loudspeaker to a microphone `distance` m away in a shoebox room."""
    rng = np.random.default_rng(seed)
    absorption, max_order = pra.inverse_sabine(rt60, list(size))
    room = pra.ShoeBox(list(size), fs=rate, materials=pra.Material(absorption), max_order=min(max_order, 40))
    speaker = np.array([1.5 + rng.uniform(0, 1), 1.5 + rng.uniform(0, 1), 1.2])
    direction = rng.standard_normal(2)
    mic = speaker + np.append(direction / np.linalg.norm(direction) * distance, 0.1)
    mic = np.clip(mic, 0.3, np.array(size) - 0.3)  # inside the room, even for a long distance
    room.add_source(speaker.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)[:int(rate * max(rt60, 0.2) * 1.2)]
    return (h / np.sqrt(np.sum(h ** 2))).astype(np.float32)
