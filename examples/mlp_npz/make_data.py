"""Write features.npz: a synthetic tabular task (scikit-learn's make_classification,
2,000 rows, 20 features, 5 classes), the shape of a user's own .npz: arrays x and y
(optionally x_valid/y_valid and x_test/y_test; missing splits are held out)."""

import numpy as np
from sklearn.datasets import make_classification

x, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_redundant=4,
                           n_classes=5, n_clusters_per_class=2, class_sep=0.8, random_state=0)
np.savez("features.npz", x=x.astype(np.float32), y=y)
print(f"features.npz: x {x.shape}, y {y.shape}, {len(set(y))} classes")
