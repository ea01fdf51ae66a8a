"""Writes statistics pickles in the structure of the reference's run_mnist.py (numpy int64
keys, [losses, accuracies, margins] lists, 'train'/'test' accuracy lists, the configuration in
the file name) and prints what the reference's order_examples_by_forgetting.py would count
from them. Usage: reference_stats.py OUT_DIR N_EXAMPLES EPOCHS; prints "id,count,aum" lines
sorted by count then id."""
import os
import pickle
import sys

import numpy as np

out_dir, n, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
counts = np.zeros(n, dtype=np.int64)
margins = {i: [] for i in range(n)}
for seed in (1, 2):
    train_indx = np.array(range(n))
    example_stats = {}
    for epoch in range(epochs):
        learned_at = rng.integers(0, epochs + 1, size=n)
        for index in range(n):
            index_in_original_dataset = train_indx[index]
            acc = int(epoch >= learned_at[index] and rng.random() < 0.9)
            margin = float(np.float32(rng.normal(1.0 if acc else -1.0)))
            loss = float(np.float32(abs(rng.normal(0.3 if acc else 2.0))))
            index_stats = example_stats.get(index_in_original_dataset, [[], [], []])
            index_stats[0].append(loss)
            index_stats[1].append(acc)
            index_stats[2].append(margin)
            example_stats[index_in_original_dataset] = index_stats
        for split, acc in (("train", 90.0 + epoch), ("test", 85.0 + epoch)):
            index_stats = example_stats.get(split, [[], []])
            index_stats[1].append(acc)
            example_stats[split] = index_stats
    name = f"dataset_mnist__no_dropout_True__seed_{seed}__sorting_file_none__remove_n_0__keep_lowest_n_0__stats_dict.pkl"
    with open(os.path.join(out_dir, name), "wb") as f:
        pickle.dump(example_stats, f)
    # The reference's rule: forgetting events, or the presentations when never learned.
    for index in range(n):
        accs = np.array(example_stats[train_indx[index]][1])
        transitions = accs[1:] - accs[:-1]
        counts[index] += len(accs) if accs.sum() == 0 else int((transitions == -1).sum())
        margins[index].append(np.mean(example_stats[train_indx[index]][2]))
for index in sorted(range(n), key=lambda i: (counts[i], i)):
    print(f"{index},{counts[index]},{float(np.mean(margins[index]))!r}")
