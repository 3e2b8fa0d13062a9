"""The pod-side program: launched by remote/remote_train.sh on the pod, standard library only."""
