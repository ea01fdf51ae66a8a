-- Train and test accuracy of every run after every epoch.
SELECT run_id, epoch, train_acc, train_loss, test_acc, test_loss, lr, train_seconds
FROM epochs
ORDER BY run_id, epoch
